"""`storyboard serve`: the HTTP API of the original system, and a web board, over LocalService.

- app.py: the FastAPI app: every route calls one LocalService method (storyboard_cli/service.py)
  and answers what it returns; errors become {"error": "<one line>"} with a status.
- events.py: a task's progress as Server-Sent Events (the snapshots the CLI's bars draw).
- page.py: the web page at `/` (project list, a project's board from the export's template).

FastAPI is imported only here, in the optional `server` extra: the base CLI never loads it.
"""
