"""OCPP-J codec benchmark: evgw against what a user would pick instead, side by side in one run.

Contenders, per frame of the corpus (`codec_corpus.py`):
  (a) evgw      - `gateway.ocpp.Codec.decode`: parse + validate against the official schema into
                  Python objects (and, for the batch row, `decode_many` over the whole corpus);
  (b) ocpp      - the `ocpp` package's own path: `ocpp.messages.unpack` + its payload validation
                  (jsonschema Draft4Validator, cached per action, called synchronously);
  (c) jsonschema- `orjson.loads` + a precompiled `jsonschema` validator for the action;
  (d) orjson    - `orjson.loads` alone: the floor (parses, checks nothing).

Reported: nanoseconds per frame (best of several repeats: the least disturbed by a shared,
noisy machine) and the ratios (b)/(a) ("x faster than ocpp") and (a)/(d) ("x the floor").
Nothing here asserts a speed: CI runs `--quick` and keeps the report.

    python benches/bench_codec.py            # full form (about a minute)
    python benches/bench_codec.py --quick --report benches/report-codec.txt
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import ocpp.exceptions
import ocpp.messages
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from codec_corpus import CorpusFrame, build_corpus

from gateway.ocpp import Codec, OcppError, Subprotocol

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "rust" / "ocpp" / "schemas"
SUBPROTOCOL: dict[str, Subprotocol] = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}

Contender = Callable[[], object]


def _schema_path(frame: CorpusFrame) -> Path:
    folder = "v16" if frame.version == "1.6" else "v201"
    if frame.kind == "result":
        name = f"{frame.action}Response"
    else:
        name = frame.action if frame.version == "1.6" else f"{frame.action}Request"
    return SCHEMA_DIR / folder / f"{name}.json"


def evgw_contender(codecs: dict[str, Codec], frame: CorpusFrame) -> Contender:
    codec = codecs[frame.version]
    text = frame.text
    pending = {_message_id(text): frame.action} if frame.kind == "result" else None

    def run() -> object:
        try:
            return codec.decode(text, pending)
        except OcppError as error:
            return error

    return run


def ocpp_package_contender(frame: CorpusFrame) -> Contender:
    text = frame.text
    version = frame.version
    action = frame.action

    def run() -> object:
        try:
            message = ocpp.messages.unpack(text)
            if isinstance(message, ocpp.messages.CallResult):
                # The package's ChargePoint sets the action from its pending call before
                # validating a CALLRESULT; do the same.
                message.action = action
            ocpp.messages._validate_payload(message, version)
            return message
        except ocpp.exceptions.OCPPError as error:
            return error

    return run


def jsonschema_contender(frame: CorpusFrame) -> Contender:
    schema = json.loads(_schema_path(frame).read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    text = frame.text
    payload_index = 3 if frame.kind == "call" else 2

    def run() -> object:
        try:
            message = orjson.loads(text)
            validator.validate(message[payload_index])
            return message
        except (orjson.JSONDecodeError, jsonschema.ValidationError, IndexError) as error:
            return error

    return run


def orjson_contender(frame: CorpusFrame) -> Contender:
    text = frame.text

    def run() -> object:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as error:
            return error

    return run


def _message_id(text: str) -> str:
    message = orjson.loads(text)
    return str(message[1])


def _refused(result: object) -> bool:
    return isinstance(result, Exception)


def check_agreement(frame: CorpusFrame, contenders: dict[str, Contender]) -> list[str]:
    """Every contender except the floor must accept a valid frame and refuse a malformed one,
    or the comparison is not like for like."""
    problems = []
    for name, contender in contenders.items():
        if name == "orjson":
            continue
        refused = _refused(contender())
        if refused == frame.valid:
            verdict = "refused" if refused else "accepted"
            problems.append(f"{frame.name}: {name} {verdict} it")
    return problems


def time_ns_per_call(contender: Contender, quick: bool) -> float:
    """Best-of-repeats nanoseconds per call, each repeat running for roughly a fixed time."""
    timer = timeit.Timer(contender)
    target_seconds = 0.02 if quick else 0.2
    number, elapsed = timer.autorange()
    number = max(1, int(number * target_seconds / max(elapsed, 1e-9)))
    repeats = 3 if quick else 7
    best = min(timer.repeat(repeat=repeats, number=number))
    return best / number * 1e9


def run_benchmark(quick: bool) -> tuple[str, dict[str, Any]]:
    corpus = build_corpus()
    codecs = {version: Codec(subprotocol) for version, subprotocol in SUBPROTOCOL.items()}
    names = ("evgw", "ocpp", "jsonschema", "orjson")
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    for frame in corpus:
        contenders: dict[str, Contender] = {
            "evgw": evgw_contender(codecs, frame),
            "ocpp": ocpp_package_contender(frame),
            "jsonschema": jsonschema_contender(frame),
            "orjson": orjson_contender(frame),
        }
        problems += check_agreement(frame, contenders)
        timings = {name: time_ns_per_call(contenders[name], quick) for name in names}
        rows.append({"frame": frame.name, "bytes": len(frame.text.encode()), "ns": timings})

    # The batch entry point: the whole corpus per call, reported per frame.
    batches: dict[str, list[str]] = {}
    for frame in corpus:
        if frame.kind == "call":
            batches.setdefault(frame.version, []).append(frame.text)
    batch_rows: list[dict[str, Any]] = []
    for version, texts in batches.items():
        codec = codecs[version]

        def decode_batch(codec: Codec = codec, texts: list[str] = texts) -> object:
            return codec.decode_many(texts)

        def loads_batch(texts: list[str] = texts) -> object:
            out = []
            for text in texts:
                try:
                    out.append(orjson.loads(text))
                except orjson.JSONDecodeError as error:
                    out.append(error)
            return out

        batch_rows.append(
            {
                "frames": f"{version} calls x{len(texts)} (decode_many)",
                "evgw_ns_per_frame": time_ns_per_call(decode_batch, quick) / len(texts),
                "orjson_ns_per_frame": time_ns_per_call(loads_batch, quick) / len(texts),
            }
        )

    lines = [
        "OCPP-J codec benchmark" + (" (quick form)" if quick else ""),
        f"python {platform.python_version()} on {platform.machine()}, "
        f"ocpp {ocpp_version()}, jsonschema {jsonschema_version()}, orjson {orjson.__version__}",
        "",
        f"{'frame':30} {'bytes':>5} {'(a) evgw':>9} {'(b) ocpp':>9} {'(c) j.s.':>9} "
        f"{'(d) orjson':>10} {'b/a':>7} {'c/a':>6} {'a/d':>5}",
        f"{'':30} {'':>5} {'ns':>9} {'ns':>9} {'ns':>9} {'ns':>10}",
    ]
    for row in rows:
        ns = row["ns"]
        row["b_over_a"] = ns["ocpp"] / ns["evgw"]
        row["c_over_a"] = ns["jsonschema"] / ns["evgw"]
        row["a_over_d"] = ns["evgw"] / ns["orjson"]
        lines.append(
            f"{row['frame']:30} {row['bytes']:>5} {ns['evgw']:>9.0f} {ns['ocpp']:>9.0f} "
            f"{ns['jsonschema']:>9.0f} {ns['orjson']:>10.0f} {row['b_over_a']:>6.0f}x "
            f"{row['c_over_a']:>5.0f}x {row['a_over_d']:>4.2f}x"
        )
    lines += ["", "batch entry point, per frame:"]
    for batch in batch_rows:
        ratio = batch["evgw_ns_per_frame"] / batch["orjson_ns_per_frame"]
        batch["a_over_d"] = ratio
        lines.append(
            f"  {batch['frames']:40} evgw {batch['evgw_ns_per_frame']:>7.0f} ns   "
            f"orjson loop {batch['orjson_ns_per_frame']:>7.0f} ns   a/d {ratio:.2f}x"
        )
    worst_speedup = min(row["b_over_a"] for row in rows)
    worst_floor = max(row["a_over_d"] for row in rows)
    lines += [
        "",
        f"slowest speed-up over the ocpp package (b/a): {worst_speedup:.0f}x  (target >= 50x)",
        f"highest multiple of the orjson floor (a/d):   {worst_floor:.2f}x  (target <= 2.5x)",
    ]
    if problems:
        lines += ["", "contenders disagree on validity (comparison not like for like):"]
        lines += [f"  {problem}" for problem in problems]
    report = {"quick": quick, "frames": rows, "batches": batch_rows, "disagreements": problems}
    return "\n".join(lines) + "\n", report


def ocpp_version() -> str:
    from importlib.metadata import version

    return version("ocpp")


def jsonschema_version() -> str:
    from importlib.metadata import version

    return version("jsonschema")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="short form, as CI runs it")
    parser.add_argument("--report", type=Path, help="also write the text report to this file")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON to this file")
    args = parser.parse_args(argv)
    text, report = run_benchmark(args.quick)
    sys.stdout.write(text)
    if args.report:
        args.report.write_text(text, encoding="utf-8")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
