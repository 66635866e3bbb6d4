from aiinfra_pipelines.cli import main

main()
