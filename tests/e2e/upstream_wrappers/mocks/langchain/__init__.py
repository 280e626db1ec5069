"""Stand-in for langchain 0.0.78 as used by ailab chat-gpt-lang-chain/wrapper.py (no network)."""


class PromptTemplate:
    def __init__(self, input_variables=None, template=""):
        self.template = template


class OpenAIChat:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class LLMChain:
    def __init__(self, llm=None, prompt=None, verbose=False, memory=None):
        self.turns = 0

    def predict(self, human_input=""):
        self.turns += 1
        return f"mock answer {self.turns} to: {human_input}"


ConversationChain = LLMChain
