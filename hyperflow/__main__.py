from hyperflow.cli import main

main()
