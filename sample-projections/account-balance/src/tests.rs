use refract_guest::testing::{Given, given};
use serde_json::json;

use crate::{AccountBalance, AccountBalanceProjection, AccountEvent};

type P = AccountBalanceProjection;

fn opened(events: Given, account: &str, balance: i64, rejects: bool) -> Given {
    events.event(
        account,
        "AccountOpened",
        json!({"owner": "ann", "initial_balance": balance, "rejects_deposits": rejects}),
    )
}

/// A money event as `money-transfer` appends it, with the fields this crate skips.
fn moved(events: Given, account: &str, event_type: &str, amount: i64) -> Given {
    events.event(
        account,
        event_type,
        json!({"transfer_id": "t-1", "amount": amount, "to": "account-x", "from": "account-y"}),
    )
}

#[test]
fn describes_itself() {
    let d = refract_guest::describe::<P>();
    assert_eq!((d.name.as_str(), d.version), ("account-balance", 1));
    assert_eq!(
        d.event_types,
        [
            "AccountOpened",
            "MoneyWithdrawn",
            "MoneyDeposited",
            "MoneyRefunded"
        ]
    );
}

#[test]
fn an_opened_account_has_its_initial_balance() {
    let events = opened(given(), "account-1", 100, true);
    let expected = json!({
        "id": "account-1",
        "owner": "ann",
        "balance": 100,
        "rejects_deposits": true,
        "withdrawn": 0,
        "deposited": 0,
        "refunded": 0,
    });
    assert_eq!(events.doc::<P>("account-1"), Some(expected));
}

#[test]
fn rejects_deposits_defaults_to_false() {
    let events = given().event(
        "account-1",
        "AccountOpened",
        json!({"owner": "bob", "initial_balance": 5}),
    );
    assert_eq!(
        events.doc::<P>("account-1").unwrap()["rejects_deposits"],
        false
    );
}

#[test]
fn movements_add_up() {
    let mut events = opened(given(), "account-1", 100, false);
    events = moved(events, "account-1", "MoneyWithdrawn", 30);
    events = moved(events, "account-1", "MoneyDeposited", 5);
    events = moved(events, "account-1", "MoneyWithdrawn", 20);
    events = moved(events, "account-1", "MoneyRefunded", 20);
    let doc: AccountBalance =
        serde_json::from_value(events.doc::<P>("account-1").unwrap()).unwrap();
    let expected = AccountBalance {
        id: "account-1".into(),
        owner: "ann".into(),
        balance: 75,
        rejects_deposits: false,
        withdrawn: 50,
        deposited: 5,
        refunded: 20,
    };
    assert_eq!(doc, expected);
}

#[test]
fn only_account_streams_get_documents() {
    let events = opened(opened(given(), "account-1", 1, false), "wallet-1", 1, false);
    let docs = events.docs::<P>();
    assert_eq!(docs.keys().collect::<Vec<_>>(), ["account-1"]);
}

#[test]
fn money_before_the_account_is_opened_is_ignored() {
    let events = moved(given(), "account-1", "MoneyDeposited", 50);
    assert!(events.docs::<P>().is_empty());
    let events = opened(events, "account-1", 10, false);
    assert_eq!(events.doc::<P>("account-1").unwrap()["balance"], 10);
}

#[test]
fn a_second_opening_changes_nothing() {
    let events = opened(
        opened(given(), "account-1", 10, false),
        "account-1",
        99,
        true,
    );
    let doc = events.doc::<P>("account-1").unwrap();
    assert_eq!(
        (doc["balance"].clone(), doc["rejects_deposits"].clone()),
        (json!(10), json!(false))
    );
}

#[test]
fn the_fold_matches_the_projection_over_many_pages() {
    let mut events = given();
    for i in 0..50 {
        events = opened(events, &format!("account-{i}"), i * 10, i % 5 == 0);
    }
    for n in 0..1200 {
        let account = format!("account-{}", (n * 7) % 50);
        let kind = ["MoneyWithdrawn", "MoneyDeposited", "MoneyRefunded"][n as usize % 3];
        events = moved(events, &account, kind, n % 13);
    }
    let docs = events.docs::<P>();
    assert_eq!(docs.len(), 50);
    for (id, doc) in &docs {
        let stream: Vec<AccountEvent> = events
            .events()
            .iter()
            .filter(|e| &e.stream_id == id)
            .map(|e| {
                let data: serde_json::Value = serde_json::from_str(&e.data).unwrap();
                serde_json::from_value(json!({ e.event_type.as_str(): data })).unwrap()
            })
            .collect();
        let folded = AccountBalance::fold(id, &stream).unwrap();
        assert_eq!(serde_json::to_value(&folded).unwrap(), *doc, "{id}");
        let initial: i64 = id["account-".len()..].parse::<i64>().unwrap() * 10;
        let moved = folded.deposited + folded.refunded - folded.withdrawn;
        assert_eq!(folded.balance, initial + moved, "{id}");
    }
}

#[test]
fn a_malformed_amount_is_reported_with_its_sequence() {
    let events = opened(given(), "account-1", 10, false).event(
        "account-1",
        "MoneyDeposited",
        json!({"amount": "ten"}),
    );
    let error = events.project::<P>().unwrap_err();
    assert_eq!(error.event_sequence, Some(2));
    assert!(
        error.message.contains("cannot decode MoneyDeposited"),
        "{error}"
    );
}
