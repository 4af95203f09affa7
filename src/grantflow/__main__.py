from grantflow.cli import main

main()
