from translator_bot.cli import main

raise SystemExit(main())
