//! `heterolora runs sync`: send what runs on a tracking server spooled while it was away (their
//! params, metric points, tags, artifacts and final status), oldest spool first.

use crate::tracking::Tracker;
use anyhow::bail;

pub fn sync(t: &Tracker) -> anyhow::Result<()> {
    let Some(server) = t.server() else {
        eprintln!(
            "nothing to sync: {} is a local SQLite store (runs on an MLflow tracking server spool \
             under tracking/remote/<host>_<port>/spool/, or $HETEROLORA_SPOOL_DIR/spool/)",
            t.path().display()
        );
        return Ok(());
    };
    let spool_dir = server.local_root().join("spool");
    let reports = t.sync()?;
    if reports.is_empty() {
        println!(
            "nothing to sync for {}: no spool files in {}",
            server.url(),
            spool_dir.display()
        );
        return Ok(());
    }
    let mut left = 0;
    let mut refused = 0;
    for r in &reports {
        match (&r.drained, &r.skipped) {
            (Some(d), _) => {
                println!(
                    "run {}: sent {} request(s){}{}",
                    r.run_id,
                    d.sent,
                    if d.rejected.is_empty() {
                        String::new()
                    } else {
                        format!(", {} refused by the server and dropped", d.rejected.len())
                    },
                    if d.left > 0 {
                        format!(
                            ", {} kept in {} (the server stopped answering)",
                            d.left,
                            r.file.display()
                        )
                    } else {
                        String::new()
                    }
                );
                for why in &d.rejected {
                    eprintln!("  refused: {why}");
                }
                left += d.left;
                refused += d.rejected.len();
            }
            (None, Some(why)) => println!("run {}: skipped, {why}", r.run_id),
            (None, None) => {}
        }
    }
    if left > 0 {
        bail!(
            "{left} request(s) are still spooled: {} did not answer; run `heterolora runs sync` again when it is up",
            server.url()
        );
    }
    if refused > 0 {
        bail!("the server refused {refused} spooled request(s) (listed above); the rest were sent");
    }
    Ok(())
}
