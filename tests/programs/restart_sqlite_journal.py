# sqlite in its default rollback-journal mode: each transaction makes
# t.db-journal, writes it, and deletes it at commit. Transaction 50 waits
# half a second with its journal open (the checkpoint is taken there);
# transaction 120 waits two seconds (the kill comes there: the journal on
# disk is then another file than the one the checkpoint saw). Prints each
# row and the count.
import sqlite3, time
c = sqlite3.connect("t.db")
c.execute("create table if not exists t (id integer primary key, v text)")
c.commit()
for i in range(200):
    c.execute("insert into t (id, v) values (?, ?)", (i, "x" * 100))
    if i == 50:
        print("in transaction 50", flush=True)
        time.sleep(0.5)
    if i == 120:
        time.sleep(2)
    c.commit()
    print("row", i, c.execute("select count(*) from t").fetchone()[0], flush=True)
    time.sleep(0.01)
print("done", c.execute("select count(*), sum(length(v)) from t").fetchone(), flush=True)
