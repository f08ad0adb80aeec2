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

RESULTS_ONLY = "--csinfra-results-only"


def main(argv: list[str]) -> None:
    results_only = RESULTS_ONLY in argv
    argv = [a for a in argv if a != RESULTS_ONLY]
    if results_only:
        argv = [*argv[:1], "--no-write-json", *argv[1:]]
    code = 2
    try:
        from dbt.cli.main import dbtRunner

        result = dbtRunner().invoke(argv)
        code = 0 if result.success else (1 if result.exception is None else 2)
        if results_only and hasattr(result.result, "write"):
            # dbt's target path (DBT_TARGET_PATH, relative to the project: dbt runs in the project directory)
            path = os.path.join(os.environ.get("DBT_TARGET_PATH") or "target", "run_results.json")
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
