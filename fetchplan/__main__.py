from fetchplan.cli import main

raise SystemExit(main())
