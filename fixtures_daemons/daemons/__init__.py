"""One module per daemon, each mostly declarations over DaemonFixture."""
