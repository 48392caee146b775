"""Real boards (mcunet_tvm/boards.py): netduinoplus2 on QEMU bit-exact, memory-fit errors, board data."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess

import pytest

from mcunet_tvm.boards import BOARDS, KB, Region, fit_arena, linker_script, overflow_error
from mcunet_tvm.errors import BudgetError
from mcunet_tvm.resources import RUNTIME_C

from conftest import FIXTURES


def test_netduinoplus2_runs_bit_exact_on_qemu(build_cli) -> None:
    code, report, _ = build_cli("--board", "netduinoplus2", "--model", str(FIXTURES / "tiny_cnn.tflite"), "--run")
    assert code == 0
    run = report["qemu"]
    assert report["target"] == "netduinoplus2" and run["machine"] == "netduinoplus2"
    assert run["bit_exact"] is True and run["bit_exact_tflm"] is True
    assert run["instructions"] > report["macs"] > 0  # counted with TIM2 (boards/netduinoplus2/board.h)
    assert 0 < report["stack_bytes"] < BOARDS["netduinoplus2"].stack_bytes


def test_arena_too_large_for_the_board_names_region_and_shortfall(build_cli, capsys) -> None:
    code, report, out = build_cli("--board", "netduinoplus2", "--model", "mbv2-w0.35-r144")
    assert code == 2 and report is None and not out.exists()
    err = capsys.readouterr().err
    assert "netduinoplus2" in err and "SRAM 128 KB at 0x20000000" in err
    arena, short = (int(v.replace(",", "")) for v in re.search(r"needs ([\d,]+) B.*: ([\d,]+) B short", err).groups())
    assert short == arena - (128 - 8) * KB > 0


def test_fit_arena_prefers_the_tightly_coupled_ram() -> None:
    f7 = BOARDS["stm32f746g-disco"]
    assert fit_arena(f7, 60 * KB).name == "DTCM"
    assert fit_arena(f7, 100 * KB).name == "SRAM1"
    with pytest.raises(BudgetError, match=r"SRAM1 240 KB at 0x20010000.*short"):
        fit_arena(f7, 300 * KB)


def test_linker_overflow_becomes_a_budget_error() -> None:
    nd = BOARDS["netduinoplus2"]
    msg = "ld: model.elf section `.rodata' will not fit in region `FLASH'\nld: region `FLASH' overflowed by 4242 bytes"
    err = overflow_error(nd, nd.ram, msg)
    assert isinstance(err, BudgetError) and "FLASH 1024 KB at 0x08000000: 4,242 B short" in err.what
    assert overflow_error(nd, nd.ram, "undefined reference to `x'") is None


def test_netduinoplus2_link_script_is_the_board_data() -> None:
    nd = BOARDS["netduinoplus2"]
    assert (RUNTIME_C / "boards" / "netduinoplus2" / "link.ld").read_text() == linker_script(nd, nd.arena[0])


REAL_BOARDS = [name for name, b in BOARDS.items() if b.qemu_machine is None]


@pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")
@pytest.mark.parametrize("name", REAL_BOARDS)
def test_board_project_builds_with_cmake(build_cli, tmp_path, name: str) -> None:
    code, report, out = build_cli("--board", name, "--model", str(FIXTURES / "tiny_cnn.tflite"))
    assert code == 0
    board = BOARDS[name]
    assert report["board"]["arena_region"] == board.arena[0].describe()  # tiny_cnn fits the preferred RAM
    project = out / "board"
    assert {"startup.c", "main.c", "console.c", "link.ld", "CMakeLists.txt", "README.md"} <= {
        p.name for p in project.iterdir()}
    build = tmp_path / "cmake"
    for cmd in (["cmake", "-S", str(project), "-B", str(build)], ["cmake", "--build", str(build)]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr
    elf = build / "firmware.elf"
    heads = subprocess.run(["arm-none-eabi-objdump", "-h", str(elf)], capture_output=True, text=True).stdout
    sections = {p[1]: int(p[3], 16) for p in map(str.split, heads.splitlines()) if len(p) > 4 and p[0].isdigit()}
    assert sections[".text"] == board.flash.origin  # the vector table first, at the boot address
    region = board.arena[0]
    assert region.origin <= sections[".arena"] < region.origin + region.size


def test_run_on_a_real_board_is_refused(build_cli, capsys) -> None:
    code, _, _ = build_cli("--board", "nrf52840dk", "--model", str(FIXTURES / "tiny_cnn.tflite"), "--run")
    assert code == 2 and "QEMU does not emulate the board 'nrf52840dk'" in capsys.readouterr().err


def test_image_too_large_for_the_board_flash_names_the_region(build_cli, capsys, monkeypatch) -> None:
    small = dataclasses.replace(BOARDS["nrf52840dk"], flash=Region("FLASH", 0, 4 * KB))
    monkeypatch.setitem(BOARDS, "nrf52840dk", small)
    code, report, _ = build_cli("--board", "nrf52840dk", "--model", str(FIXTURES / "tiny_cnn.tflite"))
    assert code == 2 and report is None
    err = capsys.readouterr().err
    assert re.search(r"does not fit nrf52840dk's FLASH 4 KB at 0x00000000: [\d,]+ B short", err), err
