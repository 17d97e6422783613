"""Fuzzing the panel codec (``drivers/modbus_panel/profile.py``): register words and profiles.

Documented contract: the decoders turn register words into states; a word outside 0..0xFFFF
is a :class:`~edgesdk.errors.ProtocolError`, as is a block answered with the wrong number of
registers; any 16-bit word decodes (a panel may show states the profile does not name).
Profile files load or raise :class:`~edgesdk.errors.ConfigError`, whatever bytes they hold;
a profile that loads decodes any words read from its own blocks.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from functools import partial
from importlib import resources
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from drivers.modbus_panel.profile import (
    Block,
    BlockKind,
    Decoded,
    PanelStatus,
    PointStatus,
    Profile,
    available_profiles,
    load_profile,
)
from edgesdk.errors import ConfigError, ProtocolError
from tests.reliability.fuzzkit import SCALES, FuzzCount, expect, fuzz_settings
from tests.reliability.hostile import mutants, toml_documents

PROFILES = {name: load_profile(name) for name in available_profiles()}
_TEXTS = {
    name: resources.files("drivers.modbus_panel.profiles").joinpath(f"{name}.toml").read_text()
    for name in PROFILES
}
_WORD = st.integers(0, 0xFFFF)
_ANY_INT = st.one_of(_WORD, st.integers(-(2**70), -1), st.integers(0x10000, 2**70))


def _check_decoded(profile: Profile, block: Block, decoded: Decoded) -> None:
    registers = profile.registers
    assert isinstance(decoded, Decoded)
    for status in [*decoded.points.values(), *decoded.zones.values()]:
        assert isinstance(status, PointStatus)
    assert decoded.panel is None or isinstance(decoded.panel, PanelStatus)
    assert decoded.heartbeat is None or 0 <= decoded.heartbeat <= 0xFFFF
    for channels in decoded.analog.values():
        assert all(v is None or math.isfinite(v) for v in channels.values())
    # nothing is reported that the block does not cover
    covered = {registers.get((block.table, block.address + i)) for i in range(block.count)}
    mapped = {p for r in covered if r is not None for p in r.points}
    assert set(decoded.points) <= mapped and set(decoded.analog) <= mapped


_BLOCKS: dict[tuple[int, int, BlockKind | None, int | None], list[Block]] = {}


@st.composite
def _blocks(draw: st.DrawFn, profile: Profile) -> Block:
    """One of the reads the driver would make (read_blocks walks the whole map: cached)."""
    args = (
        draw(st.sampled_from([1, 2, 7, 64, 125]) | st.integers(1, 125)),
        draw(st.sampled_from([None, BlockKind.STATUS, BlockKind.ANALOG])),
        draw(st.sampled_from([None, 1, 2])),
    )
    bundled = any(profile is p for p in PROFILES.values())  # fuzzed ones are not cached
    key = (id(profile), *args)
    blocks = _BLOCKS.get(key) if bundled else None
    if blocks is None:
        blocks = profile.read_blocks(args[0], kind=args[1], loops=args[2])
        blocks = blocks or profile.read_blocks()
        if bundled:
            _BLOCKS[key] = blocks
    return draw(st.sampled_from(blocks))


@SCALES
def test_fuzz_panel_register_words(scale: int, fuzz: Callable[[str], FuzzCount]) -> None:
    """decode_block / decode_point / decode_panel_status / decode_analog with any words."""
    count = fuzz("panel-register-words")

    @fuzz_settings(1200, scale)
    @given(st.sampled_from(sorted(PROFILES)), st.data())
    def prop(name: str, data: st.DataObject) -> None:
        with count.example():
            profile = PROFILES[name]
            block = data.draw(_blocks(profile))
            words = data.draw(st.lists(_WORD, min_size=block.count, max_size=block.count))
            _check_decoded(profile, block, profile.decode_block(block, words))
            wrong = data.draw(st.lists(_WORD, max_size=block.count + 2))
            if len(wrong) != block.count:
                assert expect(ProtocolError, lambda: profile.decode_block(block, wrong)) is None

            word = data.draw(_ANY_INT)
            in_range = 0 <= word <= 0xFFFF
            status = expect(ProtocolError, lambda: profile.decode_panel_status(word))
            assert (status is not None) == in_range
            if status is not None:
                mask = sum(
                    1 << b for b in profile.panel.status_bits.model_dump().values() if b is not None
                )
                assert profile.encode_panel_status(status) == word & mask
            point = expect(ProtocolError, lambda: profile.decode_point(word))
            if profile.encoding.kind == "flags":
                assert (point is not None) == in_range
            if point is not None:  # what the emulator writes for it reads back the same
                assert profile.decode_point(profile.encode_point(point)) == point
            if profile.analog is not None:
                for channel in profile.analog.channels:
                    value = expect(ProtocolError, partial(profile.decode_analog, channel, word))
                    if not in_range:
                        continue
                    assert (value is None) == (word == channel.absent)
                    if value is not None:
                        assert math.isfinite(value)
                        again = profile.decode_analog(
                            channel, profile.encode_analog(channel, value)
                        )
                        assert again == value

    prop()


def _profile_bytes() -> st.SearchStrategy[bytes]:
    docs = [tomllib.loads(text) for text in _TEXTS.values()]
    return st.one_of(
        toml_documents(*docs).map(lambda t: t.encode("utf-8", "surrogatepass")),
        mutants([t.encode() for t in _TEXTS.values()]),
        st.sampled_from([b"\xff\xfe", "spec = 1\nname = 'caf\u00e9'".encode("latin-1")]),
        st.binary(max_size=64),
    )


@SCALES
def test_fuzz_panel_profile_files(
    scale: int, fuzz: Callable[[str], FuzzCount], tmp_path: Path
) -> None:
    """Profile files of any content: ConfigError or a profile that decodes its own blocks."""
    count = fuzz("panel-profile-files")
    seen = {"loaded": 0, "errors": 0}
    path = tmp_path / "fuzz.toml"

    @fuzz_settings(400, scale)
    @given(_profile_bytes(), st.data())
    def prop(content: bytes, data: st.DataObject) -> None:
        with count.example():
            path.write_bytes(content)
            profile = expect(ConfigError, lambda: load_profile(path))
            seen["errors" if profile is None else "loaded"] += 1
            if profile is None:
                return
            assert isinstance(profile, Profile)
            block = data.draw(_blocks(profile))
            words = data.draw(st.lists(_WORD, min_size=block.count, max_size=block.count))
            _check_decoded(profile, block, profile.decode_block(block, words))

    prop()
    assert all(seen.values()), f"the inputs missed a path: {seen}"
