//! cqrs-es's own `CqrsFramework` end to end on annals, with the bank
//! account of cqrs-es's documentation and its view kept in annals too;
//! and the view repository checked as postgres-es checks its own
//! (`persistence/postgres-es/src/view_repository.rs`).

mod common;

#[path = "../examples/bank_account/domain.rs"]
mod domain;

use std::sync::Arc;

use annals::{EventData, ExpectedVersion, Store};
use annals_cqrs::naming::{aggregate_stream, snapshot_stream, view_stream};
use annals_cqrs::{
    AnnalsCqrs, AnnalsViewRepository, annals_aggregate_cqrs, annals_cqrs, annals_snapshot_cqrs,
};
use common::{Created, TestAggregate, TestEvent, TestView, temp_store};
use cqrs_es::AggregateError;
use cqrs_es::persist::{GenericQuery, PersistenceError, ViewContext, ViewRepository};
use domain::{BankAccount, BankAccountCommand, BankAccountError, BankAccountView};

type AccountViews = AnnalsViewRepository<BankAccountView, BankAccount>;
type AccountQuery = GenericQuery<AccountViews, BankAccountView, BankAccount>;
type Make = fn(Arc<Store>, Vec<Box<dyn cqrs_es::Query<BankAccount>>>) -> AnnalsCqrs<BankAccount>;

fn frameworks() -> [(&'static str, Make); 3] {
    [
        ("event store", |s, q| annals_cqrs(s, q, Default::default())),
        ("snapshot store", |s, q| {
            annals_snapshot_cqrs(s, q, 2, Default::default())
        }),
        ("aggregate store", |s, q| {
            annals_aggregate_cqrs(s, q, Default::default())
        }),
    ]
}

// The guide's bank account through CqrsFramework::execute in each storage
// mode: commands that succeed store their events and update the view in
// annals, refused ones store nothing, and all of it survives a reopen.
#[tokio::test]
async fn bank_account_end_to_end() {
    for (mode, make) in frameworks() {
        let dir = tempfile::tempdir().unwrap();
        let id = "ACCT-1";
        {
            let store = Arc::new(Store::open(dir.path()).unwrap());
            let views = Arc::new(AccountViews::new(store.clone(), "account"));
            let cqrs = make(
                store.clone(),
                vec![Box::new(AccountQuery::new(views.clone()))],
            );
            let refused = cqrs
                .execute(id, BankAccountCommand::DepositMoney { amount: 1.0 })
                .await;
            assert!(
                matches!(refused, Err(AggregateError::UserError(BankAccountError(ref m))) if m == "account not open"),
                "{mode}: {refused:?}"
            );
            assert_eq!(
                store.global_position(),
                0,
                "{mode}: a refused command writes nothing"
            );
            let commands = [
                BankAccountCommand::OpenAccount {
                    account_id: id.to_string(),
                },
                BankAccountCommand::DepositMoney { amount: 1000.0 },
                BankAccountCommand::WithdrawMoney { amount: 200.0 },
            ];
            for command in commands {
                cqrs.execute(id, command).await.unwrap();
            }
            let overdraft = cqrs
                .execute(id, BankAccountCommand::WithdrawMoney { amount: 900.0 })
                .await;
            assert!(
                matches!(overdraft, Err(AggregateError::UserError(_))),
                "{mode}"
            );
            let view = AccountQuery::new(views).load(id).await.unwrap();
            assert_eq!(view.balance, 800.0, "{mode}");
        }
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let views = Arc::new(AccountViews::new(store.clone(), "account"));
        let cqrs = make(
            store.clone(),
            vec![Box::new(AccountQuery::new(views.clone()))],
        );
        cqrs.execute(
            id,
            BankAccountCommand::WriteCheck {
                check_number: "1170".to_string(),
                amount: 300.0,
            },
        )
        .await
        .unwrap();
        let overdraft = cqrs
            .execute(id, BankAccountCommand::WithdrawMoney { amount: 600.0 })
            .await;
        assert!(
            matches!(overdraft, Err(AggregateError::UserError(_))),
            "{mode}"
        );
        let view = AccountQuery::new(views).load(id).await.unwrap();
        assert_eq!(view.balance, 500.0, "{mode}");
        assert_eq!(view.account_id.as_deref(), Some(id), "{mode}");
        assert_eq!(view.written_checks, vec!["1170".to_string()], "{mode}");
        assert_eq!(
            view.ledger,
            vec!["deposit 1000", "atm withdrawal 200", "check 1170 300"],
            "{mode}"
        );
        assert_eq!(
            store.stream_version(&aggregate_stream("Account", id)),
            Some(3),
            "{mode}: four events"
        );
        assert_eq!(
            store.stream_version(&view_stream("account", id)),
            Some(3),
            "{mode}: one view version per command"
        );
        let snapshots = store.stream_version(&snapshot_stream("Account", id));
        let want = match mode {
            "event store" => None,
            "snapshot store" => Some(1), // after events 2 and 4
            _ => Some(3),                // after every command
        };
        assert_eq!(snapshots, want, "{mode}");
    }
}

// Ports postgres-es `test_valid_view_repository`: insert a view, load it
// with and without its context, update it with that context. Added: a
// stale update (the context of version 1 again) fails with an
// optimistic-lock error and changes nothing.
#[tokio::test]
async fn test_valid_view_repository() {
    let (_dir, store) = temp_store();
    let repo = AnnalsViewRepository::<TestView, TestAggregate>::new(store.clone(), "test_view");
    let test_view_id = annals::Uuid::now_v7().to_string();
    assert!(repo.load(&test_view_id).await.unwrap().is_none());

    let view = TestView {
        events: vec![TestEvent::Created(Created {
            id: "just a test event for this view".to_string(),
        })],
    };
    repo.update_view(view.clone(), ViewContext::new(test_view_id.to_string(), 0))
        .await
        .unwrap();
    let (found, context) = repo
        .load_with_context(&test_view_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, view);
    assert_eq!(context.version, 1);
    let found = repo.load(&test_view_id).await.unwrap().unwrap();
    assert_eq!(found, view);

    let updated_view = TestView {
        events: vec![TestEvent::Created(Created {
            id: "a totally different view".to_string(),
        })],
    };
    repo.update_view(updated_view.clone(), context)
        .await
        .unwrap();
    let found_option = repo.load(&test_view_id).await.unwrap();
    let found = found_option.unwrap();
    assert_eq!(found, updated_view);

    for stale in [0, 1, 3, -1] {
        let err = repo
            .update_view(view.clone(), ViewContext::new(test_view_id.clone(), stale))
            .await
            .unwrap_err();
        assert!(
            matches!(err, PersistenceError::OptimisticLockError),
            "{stale}: {err}"
        );
    }
    let (found, context) = repo
        .load_with_context(&test_view_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((found, context.version), (updated_view, 2));
}

// A view record that is not JSON is a typed error, not a panic.
#[tokio::test]
async fn a_view_that_does_not_decode_is_a_typed_error() {
    let (_dir, store) = temp_store();
    let repo = AnnalsViewRepository::<TestView, TestAggregate>::new(store.clone(), "v");
    for (id, event_type, data) in [
        ("a", "View", &b"not json"[..]),
        ("b", "View", b"[1]"),
        ("c", "Other", b"{}"),
    ] {
        store
            .append(
                &view_stream("v", id),
                ExpectedVersion::NoStream,
                &[EventData::new(event_type, data.to_vec())],
            )
            .unwrap();
        let err = repo.load(id).await.unwrap_err();
        assert!(
            matches!(err, PersistenceError::DeserializationError(_)),
            "{id}: {err}"
        );
    }
}
