-- Galaxy's interactive-tool map (the columns Galaxy's InteractiveToolPropagatorSQLAlchemy writes)
-- and a trigger that tells gx-it-proxy (LISTEN gxitproxy) of every change.
CREATE TABLE IF NOT EXISTS gxitproxy (
  key varchar(16) NOT NULL, key_type text NOT NULL, token varchar(32), host text, port integer, info text,
  PRIMARY KEY (key, key_type)
);
CREATE OR REPLACE FUNCTION notify_gxitproxy() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('gxitproxy', 'changed');
  RETURN NULL;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER gxitproxy_notify AFTER INSERT OR UPDATE OR DELETE ON gxitproxy
  FOR EACH STATEMENT EXECUTE FUNCTION notify_gxitproxy();
