use super::sql::like_to_glob;
use super::*;
use rusqlite::types::Value as SqlValue;

#[test]
fn parses_mlflow_filters() {
    let f =
        parse("metrics.acc > 0.8 and params.rank = '16' AND tags.`mlflow.runName` LIKE 'lora%'")
            .unwrap();
    assert_eq!(f.len(), 3);
    assert_eq!(
        f[0],
        Comparison {
            entity: Entity::Metric,
            key: "acc".into(),
            op: Op::Gt,
            value: Literal::Number(0.8)
        }
    );
    assert_eq!(f[1].entity, Entity::Param);
    assert_eq!(f[2].key, "mlflow.runName");
    assert_eq!(f[2].op, Op::Like);
    let f = parse("attributes.status IN ('FINISHED', 'FAILED') and run.start_time >= 17 and metric.\"eval/acc\" <= -1e-3").unwrap();
    assert_eq!(
        f[0].value,
        Literal::List(vec!["FINISHED".into(), "FAILED".into()])
    );
    assert_eq!(f[1].key, "start_time");
    assert_eq!(f[2].key, "eval/acc");
    assert_eq!(f[2].value, Literal::Number(-1e-3));
    assert_eq!(
        parse("attributes.run_name NOT IN ('a')").unwrap()[0].op,
        Op::NotIn
    );
    assert_eq!(
        parse("params.s = 'it''s'").unwrap()[0].value,
        Literal::Str("it's".into())
    );
    assert_eq!(parse("metrics.eval/acc != 1").unwrap()[0].key, "eval/acc");
    assert!(parse("   ").unwrap().is_empty());
}

#[test]
fn rejects_bad_filters_with_clear_messages() {
    let cases = [
        ("acc > 0.8", "unknown filter field `acc`"),
        ("foo.acc > 0.8", "unknown filter field `foo.acc`"),
        (
            "attributes.colour = 'red'",
            "unknown filter field `attributes.colour`",
        ),
        (
            "metrics.acc > 0.8 OR metrics.acc < 0.1",
            "OR is not supported",
        ),
        ("metrics.acc LIKE '0.8'", "metrics compare with"),
        ("params.rank > '8'", "params are strings"),
        ("params.rank = 16", "quote the value"),
        ("metrics.acc > 'high'", "not"),
        ("metrics.acc >", "expected a value"),
        ("params.x = 'open", "unterminated"),
        ("metrics.acc > 1 metrics.b < 2", "expected AND"),
        ("attributes.start_time LIKE 'x'", "epoch ms"),
    ];
    for (f, want) in cases {
        let e = parse(f).unwrap_err().to_string();
        assert!(e.contains(want), "filter {f:?}: error {e:?} lacks {want:?}");
    }
}

#[test]
fn builds_sql_with_parameters_in_order() {
    let f =
        parse("metrics.acc >= 0.5 and params.lr LIKE '1e-%' and attributes.run_id = 'ab'").unwrap();
    let mut args = Vec::new();
    let sql = filter_sql(&f, &mut args);
    assert_eq!(sql.matches('?').count(), args.len());
    assert!(
        sql.contains("is_nan = 0") && sql.contains("GLOB") && sql.contains("runs.run_uuid = ?")
    );
    assert_eq!(args[3], SqlValue::Text("1e-*".into()));
    assert_eq!(like_to_glob("a*b?[c]_%"), "a[*]b[?][[]c]?*");
}

#[test]
fn parses_order_by() {
    assert_eq!(
        parse_order_by("metrics.acc DESC").unwrap(),
        OrderBy {
            entity: Entity::Metric,
            key: "acc".into(),
            descending: true
        }
    );
    assert_eq!(
        parse_order_by("attributes.created").unwrap().key,
        "start_time"
    );
    assert!(!parse_order_by("params.`a b` asc").unwrap().descending);
    assert!(parse_order_by("bogus")
        .unwrap_err()
        .to_string()
        .contains("unknown field"));
    assert!(parse_order_by("metrics.acc sideways").is_err());
    let mut args = Vec::new();
    let sql = order_sql(&[parse_order_by("metrics.acc DESC").unwrap()], &mut args);
    assert!(sql.starts_with("(SELECT") && sql.contains("DESC NULLS LAST") && args.len() == 1);
}
