"""`evgw diagnostics`: write a diagnostics bundle to a file.

From a running gateway through its local API (`--url`, with an admin token), or, without
`--url`, offline from the configuration file and its store (`--config`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from gateway.config import ConfigError
from gateway.diagnostics.bundle import (
    DiagnosticsError,
    build_offline_diagnostics_bundle,
    fetch_diagnostics_bundle,
)

TOKEN_ENV: Final = "EVGW_API_TOKEN"
EXIT_OK: Final = 0
EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


def default_output() -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return Path(f"evgw-diagnostics-{stamp}.tar.gz")


def run_diagnostics(
    *,
    config: str | None,
    output: str | None,
    url: str | None,
    token: str | None,
    err: TextIO = sys.stderr,
) -> int:
    """Build or fetch the bundle and write it to `output` ("-": standard output). Returns
    the exit code: 0 written, 1 the gateway or the store could not give it, 2 usage or
    configuration error."""
    if url is None and config is None:
        print("evgw diagnostics: give --config FILE, or --url URL of a running gateway", file=err)
        return EXIT_USAGE
    try:
        if url is not None:
            token = token or os.environ.get(TOKEN_ENV)
            if not token:
                print(
                    f"evgw diagnostics: --url needs an admin token (--token or ${TOKEN_ENV})",
                    file=err,
                )
                return EXIT_USAGE
            bundle = asyncio.run(fetch_diagnostics_bundle(url, token))
        else:
            assert config is not None
            bundle = asyncio.run(build_offline_diagnostics_bundle(config))
    except ConfigError as error:
        print(f"evgw diagnostics: configuration error: {error.source}:", file=err)
        for problem in error.problems:
            print(f"  {problem}", file=err)
        return EXIT_USAGE
    except DiagnosticsError as error:
        print(f"evgw diagnostics: {error}", file=err)
        return EXIT_FAILURE
    if output == "-":
        sys.stdout.buffer.write(bundle)
        sys.stdout.buffer.flush()
        return EXIT_OK
    target = Path(output) if output is not None else default_output()
    try:
        target.write_bytes(bundle)
    except OSError as error:
        print(f"evgw diagnostics: cannot write {target}: {error.strerror or error}", file=err)
        return EXIT_FAILURE
    print(f"evgw diagnostics: wrote {target} ({len(bundle)} bytes)", file=err)
    return EXIT_OK
