from . import app

app(prog_name="coig-writer")
