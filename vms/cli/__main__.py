from vms.cli.commands import main

raise SystemExit(main())
