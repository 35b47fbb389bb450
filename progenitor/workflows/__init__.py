"""The LangGraph loop, its state, and the runner that starts, resumes and drives runs."""
