"""CRM sync: CSV import of customers and contacts with a validation report, and CSV export."""

from crm_bridge.sync.csv_io import ImportReport, RowError, export_companies, import_companies, import_contacts

__all__ = ["ImportReport", "RowError", "export_companies", "import_companies", "import_contacts"]
