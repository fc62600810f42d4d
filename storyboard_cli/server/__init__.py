"""`storyboard serve`: the HTTP API of the original system, and a web board, over LocalService.

- app.py: the FastAPI app: every route calls one LocalService method (storyboard_cli/service.py)
  and answers what it returns; errors become {"error": "<one line>"} with a status.
- events.py: a task's progress as Server-Sent Events (the snapshots the CLI's bars draw).
- page.py: the web page at `/` (project list, a project's board from the export's template).
- routes.py: the API's paths, for the routes here and the requests of the remote client.
- bodies.py: the request bodies, for the server that reads them and the client that writes them.
- errors.py: what an error answers: its class's status and one line.

FastAPI is imported only by app.py, events.py and page.py, in the optional `server` extra:
the base CLI never loads it (routes.py and bodies.py need none of it).
"""
