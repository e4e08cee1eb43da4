from hyperflow.entry import main

main()
