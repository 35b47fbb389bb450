"""The boundary for candidate data: every parser the host applies to bytes a candidate controls
lives here, bounded in size, depth, count and path length, iterative, and failing that candidate
(a ``CandidateDataError`` or a reason), never the run.

- ``arrays``: the predictions file, one plain ``.npy`` array of real numbers, mapped read-only;
- ``jsonl`` and ``metrics``: metric lines and progress points, bounded in length and nesting;
- ``walk``: walking and removing a tree a candidate shaped, iteratively, within ``Bounds``;
- ``tree_files``: host-side access to files in a candidate's tree, never through a link;
- ``display``: what a person is shown of a candidate's words, control characters escaped.

Trees themselves are written from a commit's blobs, with no ``.gitattributes`` processing, by
``lineage.blobs``; outputs come back through ``compute.outputs``, which holds them to ``walk``'s bounds."""
