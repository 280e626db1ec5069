from langchain import OpenAIChat  # noqa: F401
