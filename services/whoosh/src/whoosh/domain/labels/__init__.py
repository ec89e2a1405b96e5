"""Gitea labels, pure: the required set (``required``), what a repository needs to get
there (``plan``), and the per-repository outcome a sync or a status check reports
(``report``)."""
