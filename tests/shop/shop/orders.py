"""Placing an order (a web request) and the jobs behind it, each as the shop first wrote it and as fixed.

The three bugs, found by racelab with its built-in points only (the shop has no race point):

1. :func:`place_order` enqueues the receipt job inside its transaction: a worker can run
   :func:`send_receipt` before the order commits and find no order. Fixed:
   :func:`place_order_on_commit` enqueues once the transaction commits.
2. :func:`record_sale` reads a product's count, adds one and saves it back: two jobs at once
   lose a sale. Fixed: :func:`record_sale_in_the_database` adds in the UPDATE itself.
3. :func:`import_order` saves the order in autocommit, then its lines one by one: a reader can
   see the order with no lines. Fixed: :func:`import_order_atomically` commits them together.
"""
import django_rq
from django.db import transaction
from django.db.models import F

from shop.models import Order, OrderLine, Product, Receipt


def place_order(number, customer, lines):
    """Create an order and its lines, and enqueue its receipt inside the same transaction (bug 1)."""
    with transaction.atomic():
        order = _create(number, customer, lines)
        django_rq.get_queue("mail").enqueue(send_receipt, order.id)
    return order


def place_order_on_commit(number, customer, lines):
    """Create an order and its lines; enqueue its receipt once they are committed."""
    with transaction.atomic():
        order = _create(number, customer, lines)
        transaction.on_commit(lambda: django_rq.get_queue("mail").enqueue(send_receipt, order.id))
    return order


def send_receipt(order_id):
    """Write the order's receipt (the job); raises Order.DoesNotExist for an order it cannot see."""
    order = Order.objects.get(id=order_id)
    count = order.lines.count()
    Receipt.objects.create(order=order, text=f"Order {order.number}: {count} line(s). Thank you, {order.customer}.")


def record_sale(product_id):
    """Count one sale of the product by reading, adding and saving (bug 2)."""
    product = Product.objects.get(id=product_id)
    product.sold += 1
    product.save()


def record_sale_in_the_database(product_id):
    """Count one sale of the product in one UPDATE."""
    Product.objects.filter(id=product_id).update(sold=F("sold") + 1)


def import_order(number, customer, lines):
    """Create an order from another system's export, then its lines, each saved on its own (bug 3)."""
    _create(number, customer, lines)


def import_order_atomically(number, customer, lines):
    """Create an order from another system's export with its lines, in one transaction."""
    with transaction.atomic():
        _create(number, customer, lines)


def order_summary(number):
    """Return ``(order exists, line count)`` as a page would read them: the order, then its lines."""
    exists = Order.objects.filter(number=number).exists()
    return exists, OrderLine.objects.filter(order__number=number).count()


def _create(number, customer, lines):
    order = Order.objects.create(number=number, customer=customer)
    for product_id, quantity in lines:
        OrderLine.objects.create(order=order, product_id=product_id, quantity=quantity)
    return order
