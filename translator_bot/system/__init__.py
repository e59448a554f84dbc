"""Facts about the machine the bot runs on, shared by the doctor (which reports them) and the test
bench and demo (which rely on them): where Janus is installed, how to make a private network."""
