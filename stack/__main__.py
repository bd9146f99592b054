import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:  # the job server's client starts without the launcher's imports (a third of a second)
        from stack.run_on_server import main as run_main

        sys.exit(run_main(sys.argv[2:]))
    from stack.cli import main

    sys.exit(main())
