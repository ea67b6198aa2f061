"""`asl serve`: the engine, the record and the explanations, served over HTTP to a team.

`app.create_app` builds the FastAPI application: one router per resource (`routers/`),
authentication and roles as dependencies (`auth`), bodies read through one reader
(`bodies`), errors rendered as problem+json in one place (`problems`), and the outer
`guard` for body limits and security headers. The service is thin: it calls store/,
knowledge_graph/ and engine/, and none of them knows it exists.
"""
