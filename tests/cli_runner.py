"""Running a command-line tool's main() inside the test process, as a shell would run it."""


def run_cli(main, capsys, *argv):
    """main([str(a) for a in argv]); returns (exit code, stdout, stderr). An exit through
    SystemExit (argparse, a tool's fail()) gives its code."""
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err
