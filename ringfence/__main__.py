from ringfence.cli.main import main

main()
