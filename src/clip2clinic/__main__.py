from clip2clinic.cli import main

raise SystemExit(main())
