class ConversationalBufferWindowMemory:
    def __init__(self, k=0):
        self.k = k
