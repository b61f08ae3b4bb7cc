use refract_guest::{Envelope, Projection};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
pub enum CartEvent {
    CartOpened { customer_id: String },
    ItemAdded { sku: String, quantity: u32 },
    CartAbandoned {},
}

#[derive(Serialize, Deserialize)]
pub struct Cart {
    pub id: String,
    pub customer_id: String,
    pub items: u32,
}

pub struct OpenCarts;

impl Projection for OpenCarts {
    type Event = CartEvent;
    type Doc = Cart;
    const NAME: &'static str = "open-carts";
    const VERSION: u32 = 1;

    fn create(id: &str, event: &Envelope<CartEvent>) -> Option<Cart> {
        match &event.event {
            CartEvent::CartOpened { customer_id } => Some(Cart {
                id: id.to_owned(),
                customer_id: customer_id.clone(),
                items: 0,
            }),
            _ => None,
        }
    }

    fn apply(cart: &mut Cart, event: &Envelope<CartEvent>) {
        if let CartEvent::ItemAdded { quantity, .. } = &event.event {
            cart.items += quantity;
        }
    }

    fn should_delete(_cart: &Cart, event: &Envelope<CartEvent>) -> bool {
        matches!(event.event, CartEvent::CartAbandoned {})
    }
}

refract_guest::export_projection!(OpenCarts);
