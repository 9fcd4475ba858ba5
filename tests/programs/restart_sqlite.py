# An sqlite database committing a row at a time (issue "Nothing comes back
# silently wrong"): the killed run commits rows after the checkpoint; a
# restart that left the database as it was would fail with "UNIQUE
# constraint failed". Prints each row and the count.
import sqlite3, time, sys
c = sqlite3.connect("t.db")
c.execute("create table if not exists t (id integer primary key, v text)")
c.commit()
for i in range(300):
    c.execute("insert into t (id, v) values (?, ?)", (i, "x" * 100))
    c.commit()
    print("row", i, c.execute("select count(*) from t").fetchone()[0], flush=True)
    time.sleep(0.01)
print("done", c.execute("select count(*), sum(length(v)) from t").fetchone(), flush=True)
