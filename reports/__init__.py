"""Report building and rendering: exports (CSV, XLSX, Green Button XML) and customer reports."""
