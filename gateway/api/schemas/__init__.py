"""Response models of the API (`XPublic` per resource): what each operation answers, typed in the OpenAPI spec."""
