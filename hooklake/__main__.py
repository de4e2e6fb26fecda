from hooklake.cli import main

main(prog_name="hooklake")
