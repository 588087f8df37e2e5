"""CRM sync: CSV import of customers and contacts with a validation report, and CSV export."""

from crm_bridge.sync.csv_io import ImportReport, RowError, export_customers, import_contacts, import_customers

__all__ = ["ImportReport", "RowError", "export_customers", "import_customers", "import_contacts"]
