//! [`AnnalsViewRepository`]: cqrs-es's `ViewRepository` on an annals store.

use std::marker::PhantomData;
use std::sync::Arc;

use annals::{ExpectedVersion, Store};
use cqrs_es::persist::{PersistenceError, ViewContext, ViewRepository};
use cqrs_es::{Aggregate, View};

use crate::error::{DecodeError, from_annals, from_join};
use crate::naming::view_stream;
use crate::record::{decode_view, encode_view};

/// A cqrs-es view repository in an annals [`Store`], so that an
/// application needs no other database for its read models.
///
/// Each view instance is a stream, `$view-{view_name}-{view_id}` (see
/// [`crate::naming`]), and its latest event is the view, as JSON. The
/// [`ViewContext`] version is the number of versions stored (0: none yet);
/// an update appends with the expected version that it implies, so a
/// stale update fails with [`PersistenceError::OptimisticLockError`] and
/// writes nothing, like postgres-es's `UPDATE ... WHERE version = $n`.
///
/// Every update appends a whole view and old versions are kept (annals has
/// no stream limits yet): a view stream grows by one view per update. The
/// appends run on tokio's blocking pool, as the event repository's do.
pub struct AnnalsViewRepository<V, A> {
    store: Arc<Store>,
    view_name: String,
    _types: PhantomData<fn() -> (V, A)>,
}

impl<V, A> AnnalsViewRepository<V, A>
where
    V: View<A>,
    A: Aggregate,
{
    /// A repository for the views called `view_name` (the table name of
    /// postgres-es) in `store`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use annals_cqrs::AnnalsViewRepository;
    /// # use cqrs_es::doc::MyAggregate;
    /// # use cqrs_es::persist::doc::MyView;
    ///
    /// # let dir = tempfile::tempdir().unwrap();
    /// let store = Arc::new(annals::Store::open(dir.path()).unwrap());
    /// let views = AnnalsViewRepository::<MyView, MyAggregate>::new(store, "my_view");
    /// ```
    pub fn new(store: Arc<Store>, view_name: impl Into<String>) -> Self {
        AnnalsViewRepository {
            store,
            view_name: view_name.into(),
            _types: PhantomData,
        }
    }

    /// The view's name.
    pub fn view_name(&self) -> &str {
        &self.view_name
    }
}

impl<V, A> ViewRepository<V, A> for AnnalsViewRepository<V, A>
where
    V: View<A>,
    A: Aggregate,
{
    async fn load(&self, view_id: &str) -> Result<Option<V>, PersistenceError> {
        Ok(self.load_with_context(view_id).await?.map(|(view, _)| view))
    }

    async fn load_with_context(
        &self,
        view_id: &str,
    ) -> Result<Option<(V, ViewContext)>, PersistenceError> {
        let stream = view_stream(&self.view_name, view_id);
        let Some(version) = self.store.stream_version(&stream) else {
            return Ok(None);
        };
        let events = self
            .store
            .read_stream(&stream, version, 1)
            .map_err(from_annals)?;
        let Some(e) = events.first() else {
            return Ok(None);
        };
        let view = serde_json::from_value(decode_view(e)?)
            .map_err(|source| DecodeError::json(e, "data", source))?;
        let count = i64::try_from(version.saturating_add(1))
            .map_err(|_| DecodeError::new(e, "the view's version does not fit an i64"))?;
        Ok(Some((view, ViewContext::new(view_id.to_owned(), count))))
    }

    async fn update_view(&self, view: V, context: ViewContext) -> Result<(), PersistenceError> {
        let expected = match u64::try_from(context.version) {
            Ok(0) => ExpectedVersion::NoStream,
            Ok(n) => ExpectedVersion::Exact(n - 1),
            Err(_) => return Err(PersistenceError::OptimisticLockError),
        };
        let stream = view_stream(&self.view_name, &context.view_instance_id);
        let data = encode_view(
            &self.view_name,
            &context.view_instance_id,
            &serde_json::to_value(&view)?,
        )?;
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || store.append(&stream, expected, &[data]))
            .await
            .map_err(from_join)?
            .map_err(from_annals)?;
        Ok(())
    }
}
