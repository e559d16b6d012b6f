-- "Charging" for both versions. A 1.6 connector says Charging in its status; a 2.0.1 connector says Occupied,
-- and whether energy flows is its transaction's chargingState. The central system copies that here (the
-- station's transactionId while the transaction is active and Charging), so the fleet's charging state and
-- counts read one table, whatever the version. NULL: not charging (or a 1.6 connector).
ALTER TABLE connector_status ADD COLUMN charging_tx text;
