"""Work: projects, tasks, reports, bookmarks, dashboard, search."""
