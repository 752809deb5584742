"""djscale's Pulumi components and the pure code they use.

`config`/`stack`: the stack's settings; `render/`: every file and script a server receives;
`database`, `app_server`, `proxy`: one component per host role; `remote`: how they reach
their servers (SSH connections, remote steps, Docker providers).
"""
