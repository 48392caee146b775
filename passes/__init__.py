"""mcunet-tvm's Relax and TIR passes (imported as ``mcunet_tvm.passes``)."""
