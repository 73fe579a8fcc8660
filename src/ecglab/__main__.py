from ecglab.cli.main import app

app(prog_name="ecglab")
