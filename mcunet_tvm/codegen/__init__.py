"""Code generation: TIR kernels to C, and the ahead-of-time C entry point."""
