-- Exports walk a tenant's customers in id order, a batch at a time
-- (models.ExportCustomers): reading customers, and then their identities by
-- customer id, nearly in the order they are stored. This index is that walk.
CREATE INDEX ix_customers_tenant_id ON customers (tenant_id, id);
