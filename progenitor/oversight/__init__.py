"""The human gate, in one package: the policy that decides or escalates (``policy``), what the
gate asks and is answered (``hitl``), the decision store (``store``), the one ``decide`` every
surface calls (``decide``), reverts, adoption, and the hash-chained audit log with its heads in
git (``audit``, ``audit_heads``). The graph's gate nodes (``workflows.gates``) call these."""
