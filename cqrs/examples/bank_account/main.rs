//! The bank account of cqrs-es's documentation, end to end on annals:
//! `cargo run -p annals-cqrs --example bank_account`.
//!
//! Opens a store in a temporary directory, runs a handful of commands
//! through a `CqrsFramework` whose events and account view both live in
//! annals, reopens the store, and prints the account's events and balance.

mod domain;

use std::sync::Arc;

use annals_cqrs::{AnnalsEventRepository, AnnalsViewRepository, annals_cqrs};
use cqrs_es::persist::{GenericQuery, PersistedEventRepository, PersistedEventStore};
use cqrs_es::{AggregateError, EventStore};
use domain::{BankAccount, BankAccountCommand, BankAccountView};

type AccountQuery =
    GenericQuery<AnnalsViewRepository<BankAccountView, BankAccount>, BankAccountView, BankAccount>;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    println!("store: {} (removed at exit)", dir.path().display());
    let account = "ACCT-0001";
    {
        let store = Arc::new(annals::Store::open(dir.path())?);
        let views = Arc::new(AnnalsViewRepository::new(store.clone(), "account_view"));
        let cqrs = annals_cqrs(
            store.clone(),
            vec![Box::new(AccountQuery::new(views))],
            Default::default(),
        );
        let commands = [
            BankAccountCommand::OpenAccount {
                account_id: account.to_string(),
            },
            BankAccountCommand::DepositMoney { amount: 1000.0 },
            BankAccountCommand::WithdrawMoney { amount: 200.0 },
            BankAccountCommand::WriteCheck {
                check_number: "1170".to_string(),
                amount: 256.28,
            },
        ];
        for command in commands {
            println!("command: {command:?}");
            cqrs.execute(account, command).await?;
        }
        // The aggregate refuses an overdraft; nothing is written.
        let refused = cqrs
            .execute(
                account,
                BankAccountCommand::WithdrawMoney { amount: 5000.0 },
            )
            .await;
        match refused {
            Err(AggregateError::UserError(e)) => println!("refused: WithdrawMoney 5000: {e}"),
            other => return Err(format!("expected a refusal, got {other:?}").into()),
        }
    }

    // Reopen: everything above came back from disk.
    let store = Arc::new(annals::Store::open(dir.path())?);
    let repo = AnnalsEventRepository::new(store.clone());
    println!(
        "\nevents of {account} (annals stream {:?}):",
        annals_cqrs::naming::aggregate_stream("Account", account)
    );
    for e in repo.get_events::<BankAccount>(account).await? {
        println!("  {} {} {}", e.sequence, e.event_type, e.payload);
    }
    let events = PersistedEventStore::<_, BankAccount>::new_event_store(repo);
    let context = events.load_aggregate(account).await?;
    println!("balance (aggregate): {:.2}", context.aggregate.balance());
    let views = Arc::new(AnnalsViewRepository::new(store, "account_view"));
    let view = AccountQuery::new(views)
        .load(account)
        .await
        .ok_or("the account view is missing")?;
    println!("balance (view):      {:.2}", view.balance);
    println!("ledger (view):       {}", view.ledger.join(", "));
    Ok(())
}
