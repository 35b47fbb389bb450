"""What several test modules share: real repos at gates, the LLM server's scripts, Ray fixtures, waiting on conditions."""
