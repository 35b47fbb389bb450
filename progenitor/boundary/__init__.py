"""The boundary for candidate data: every parser the host applies to bytes a candidate
controls lives here (metric lines in ``metrics``; files in a candidate's tree, opened with no
link followed and no ``.git`` in any spelling, in ``tree_files``), bounded in size, depth and count, and fails that candidate, never the run."""
