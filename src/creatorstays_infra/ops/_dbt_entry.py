"""dbt's command line for csinfra's own runs: `python _dbt_entry.py [--csinfra-results-only] DBT-ARGS`.

The same arguments, output and exit codes as the `dbt` command (0 success, 1 a node failed, 2 dbt could
not run), but the process ends with os._exit once dbt has returned and the output is flushed: Python's
interpreter teardown would spend about half a second freeing the parsed project object by object.
`--csinfra-results-only` writes target/run_results.json but not target/manifest.json (dbt writes the
manifest twice per command, about 0.3 s; `dbt parse` or any plain dbt command writes it).

Run as a file, not as a module of the package, so importing it costs dbt's import only.
"""

import os
import sys
import time

RESULTS_ONLY = "--csinfra-results-only"
# dbt keeps one partial parse (target/partial_parse.msgpack) and throws it away whenever the --vars, the target or
# the connection (database, user) differ from the last run's: then it parses the whole project again (~3-5 s).
# csinfra keeps a copy per combination here, under the target path, and points dbt at the matching one
# (DBT_PARTIAL_PARSE_FILE_PATH), so runs that alternate (`csinfra marts --as-of …` between backfills, two
# databases) each find their own. dbt still checks every copy it reads as it checks its own file: a copy that
# does not match is simply parsed over.
PARSE_CACHE_DIR = "partial_parse"
PARSE_CACHE_KEEP = 16
# what of the profile's connection dbt hashes into its check (connection_info(): host, port, user, database,
# schema, connect_timeout, sslmode), and the app schema the sources read
PARSE_IDENTITY_ENV = (
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGCONNECT_TIMEOUT",
    "PGSSLMODE",
    "CSINFRA_SCHEMA",
    "CSINFRA_APP_SCHEMA",
)


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1] if name in argv[:-1] else ""


def parse_cache_file(argv: list[str], target_dir: str) -> str:
    """The copy of dbt's partial parse for this run's --vars, --target and connection."""
    import hashlib

    identity = [_option(argv, "--vars"), _option(argv, "--target")]
    identity += [os.environ.get(k, "") for k in PARSE_IDENTITY_ENV]
    key = hashlib.sha256("\0".join(identity).encode()).hexdigest()[:20]
    return os.path.join(target_dir, PARSE_CACHE_DIR, f"{key}.msgpack")


def keep_parse(parsed: str, cache_file: str, since: float) -> None:
    """After the run: when dbt wrote a new partial parse, keep a copy of it (written whole, then renamed), and only
    the PARSE_CACHE_KEEP newest copies."""
    try:
        if os.stat(parsed).st_mtime < since:
            return  # dbt found nothing to parse: the copy it read is still current
        folder = os.path.dirname(cache_file)
        os.makedirs(folder, exist_ok=True)
        partial = f"{cache_file}.{os.getpid()}.tmp"
        with open(parsed, "rb") as src, open(partial, "wb") as dst:
            dst.write(src.read())
        os.replace(partial, cache_file)
        copies = sorted(
            (e for e in os.scandir(folder) if e.name.endswith(".msgpack")),
            key=lambda e: e.stat().st_mtime,
            reverse=True,
        )
        for old in copies[PARSE_CACHE_KEEP:]:
            os.unlink(old.path)
    except OSError:
        pass  # a cache: losing a copy costs one full parse, never the run


def main(argv: list[str]) -> None:
    results_only = RESULTS_ONLY in argv
    argv = [a for a in argv if a != RESULTS_ONLY]
    if results_only:
        argv = [*argv[:1], "--no-write-json", *argv[1:]]
    code = 2
    # dbt's target path (DBT_TARGET_PATH, relative to the project: dbt runs in the project directory)
    target_dir = os.environ.get("DBT_TARGET_PATH") or "target"
    cache_file = parse_cache_file(argv, target_dir)
    if "DBT_PARTIAL_PARSE_FILE_PATH" not in os.environ and os.path.exists(cache_file):
        os.environ["DBT_PARTIAL_PARSE_FILE_PATH"] = cache_file
    started = time.time()
    try:
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(argv)
        keep_parse(os.path.join(target_dir, "partial_parse.msgpack"), cache_file, started)
        code = 0 if result.success else (1 if result.exception is None else 2)
        if results_only and hasattr(result.result, "write"):
            path = os.path.join(target_dir, "run_results.json")
            try:  # dbt's run_results.json: the run's outcome stands either way
                result.result.write(path)
            except Exception as exc:  # noqa: BLE001
                print(f"csinfra: could not write {path}: {exc}", file=sys.stderr)
    except BaseException:  # noqa: BLE001 (dbtRunner returns dbt's own errors; anything else is shown, exit 2)
        import traceback

        traceback.print_exc()
    finally:
        import atexit

        atexit._run_exitfuncs()  # multiprocessing's finalizers unlink dbt's semaphores (else: "leaked semaphore")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    # run as a file, Python puts this directory first on the path, where the package's own dbt.py would
    # shadow dbt itself
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    main(sys.argv[1:])
