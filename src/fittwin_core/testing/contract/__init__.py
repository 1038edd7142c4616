"""The adapter contract suite: abstract pytest classes, one per port, that every adapter of
that port must pass. Subclass a contract and provide its fixture::

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            return MyStore(...)
"""
